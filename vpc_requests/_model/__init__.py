"""The model: what a VPC service is (:class:`VPCService`)."""
