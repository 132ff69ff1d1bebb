"""Flax NNX MLP trainer for MNIST."""
