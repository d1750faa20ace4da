"""The RT-DETRv2 model: backbone, hybrid encoder, decoder, post-processing, checkpoints."""
