// Preloaded with `node --import ./shim.mjs`: PostGraphile 5 declares Node >= 22.
// On Node 20 it runs as is today; this fills in the Node 22 globals its
// dependencies may reach for, so a newer patch release does not break the peer.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
if (typeof Array.fromAsync !== "function") {
  Array.fromAsync = async function fromAsync(items, map) {
    const out = [];
    for await (const item of items) out.push(map ? await map(item, out.length) : item);
    return out;
  };
}
