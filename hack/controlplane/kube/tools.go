//go:build tools

// Package tools pins the kube-apiserver main package so `go mod tidy` keeps it in the build list.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver/app"
