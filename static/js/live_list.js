// Lists that grow while the consult goes on (chat, live transcript) sit in role="log" regions.
// A refresh must not re-render them: a screen reader would read every line again. Instead the
// fetched items are merged in by element id: new ones are inserted where the server puts them,
// changed ones (a corrected transcript line) replaced, and the rest left alone.

export function parseFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

// Merge the `li[id]` children of `source` into `list`; returns how many items were new.
export function mergeItems(list, source) {
  const incoming = [...source.children].filter((el) => el.matches("li[id]"));
  const shown = new Map([...list.children].map((el) => [el.id, el]));
  let previous = null;
  let added = 0;
  for (const item of incoming) {
    let node = shown.get(item.id);
    shown.delete(item.id);
    if (!node) added++;
    if (node && !node.isEqualNode(item)) {
      node.replaceWith(item);
      node = item;
    }
    node ??= item;
    const expected = previous ? previous.nextElementSibling : list.firstElementChild;
    if (node !== expected) list.insertBefore(node, expected);
    previous = node;
  }
  // What the server no longer lists ("No messages yet" once there are messages).
  for (const stale of shown.values()) stale.remove();
  return added;
}
