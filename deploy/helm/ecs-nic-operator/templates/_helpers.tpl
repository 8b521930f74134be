{{- define "ecsnic.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or <release> when it already contains the chart name; overridable. */}}
{{- define "ecsnic.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ecsnic.labels" -}}
app.kubernetes.io/name: {{ include "ecsnic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "ecsnic.selector" -}}
app.kubernetes.io/name: {{ include "ecsnic.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ecsnic.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecsnic.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Leader election: on when asked, or by default when more than one replica runs. */}}
{{- define "ecsnic.leaderElect" -}}
{{- $e := .Values.leaderElection.enabled }}
{{- if kindIs "invalid" $e }}{{ if gt (int .Values.replicaCount) 1 }}true{{ end }}{{ else if $e }}true{{ end }}
{{- end }}

{{- define "ecsnic.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{- define "ecsnic.leaderElectionId" -}}
{{- default (include "ecsnic.fullname" .) .Values.leaderElection.id }}
{{- end }}

{{- define "ecsnic.pdb" -}}
{{- $e := .Values.podDisruptionBudget.enabled }}
{{- if kindIs "invalid" $e }}{{ if gt (int .Values.replicaCount) 1 }}true{{ end }}{{ else if $e }}true{{ end }}
{{- end }}

{{- define "ecsnic.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}
