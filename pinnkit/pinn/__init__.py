"""The PINN trainer's parts: its options (`train_options`), the trained result (`solution`),
the terms' point sets (`batches`), the compiled whole step (`compiled`), the registered
strategies it runs (`first_phase` and `second_phase`: the two phases' optimizers; `points`:
time marching, adaptive sampling, point and causal weighting) and its progress reporting
(`progress`). The loop and its checkpoints are
`pinnkit.trainer`; the loss-weighting schemes are `pinnkit.weighting`."""
