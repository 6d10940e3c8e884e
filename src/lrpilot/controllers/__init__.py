"""Layer 2: controllers, online rules that watch training and set the LR (names registered in
:data:`lrpilot.policy.base.REGISTRY`, imported on first use)."""
