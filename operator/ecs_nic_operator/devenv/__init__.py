"""A local development environment: a real kube-apiserver + etcd, used by `demo` and by the tests."""
