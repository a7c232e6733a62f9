"""MobileNet width/resolution multiplier study on CIFAR-10."""
