"""The PINN trainer's parts: its options (`train_options`), the trained result (`solution`),
the compiled whole step (`compiled`), the registered strategies it runs (`second_phase`:
the second-phase optimizers; `points`: time marching, adaptive sampling, point and causal
weighting) and its progress reporting (`progress`). The loop and its checkpoints are
`pinnkit.trainer`; the loss-weighting schemes are `pinnkit.weighting`."""
