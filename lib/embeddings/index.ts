// Chapter 01, embeddings: ids to vectors (one-hot, bigram counts, word2vec, pretrained vectors) and pictures of them.
export * from "./embedding";
export * from "./bigram";
export * from "./word2vec";
export * from "./projector";
export * from "./pretrainedEmbeddings";
