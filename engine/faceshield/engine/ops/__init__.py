"""Differentiable image operations: filters, SSIM, face-region geometry."""
