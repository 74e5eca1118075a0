// What the widgets' bundle gets for a Node-only module (lib/tools/course/widgetAssets.ts): the
// library's shared files import them for functions the browser never calls; calling one fails loudly.
const fail = () => {
  throw new Error("a Node-only module (TensorFlow.js, onnxruntime, the file system) is not available in the browser");
};
module.exports = new Proxy({}, { get: (_, key) => (key === "__esModule" ? false : fail) });
