"""The model store: artifacts (weights + manifest) and the registry that versions them.

Below both `training` (which publishes) and `worker` (which follows the production alias),
above `vaecore` (the detector it saves and rebuilds) and `schemas` (the manifest).
`modelstore.registry` imports the artifact code only when publishing, so listing or
promoting models never imports torch.
"""
