"""Model: per-modality encoders (a registry), latent masking, the aggregator, head, and VICReg."""

from crossl_edge.model.crossl import CroSSL, ModalityShape, ModelConfig, PhoneModel
from crossl_edge.model.encoders import ENCODERS, build_encoder

__all__ = ["ENCODERS", "CroSSL", "ModalityShape", "ModelConfig", "PhoneModel", "build_encoder"]
