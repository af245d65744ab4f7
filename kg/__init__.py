"""Keywords and the knowledge graph: the KoBART keyword extractor, Korean normalisation (kiwipiepy),
the networkx graph of keywords, documents and categories, and the BM25 lexical retriever."""
