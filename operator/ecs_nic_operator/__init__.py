"""ecs-nic-operator: attach NICs to Huawei Cloud ECS / OpenStack servers from Kubernetes resources."""

__version__ = "0.1.0"

GROUP = "ecsnic.io"
VERSION = "v1alpha1"
