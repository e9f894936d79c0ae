"""Neural nets for tables, trained in fastai's Learner: fold-safe input encoding (`features`), the modules
(`modules`: a modern MLP with numerical embeddings, TabM), training callbacks (`callbacks`) and the fold fit
(`fit`) that the `mlp` and `tabm` model families share."""
