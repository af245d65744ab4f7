"""Dense retrieval: the e5 backbone import, the text-CLIP encoder and loss, FAISS stores, versioned indexes."""
