{{- define "speedrun-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "speedrun-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "speedrun-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "speedrun-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "speedrun-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "speedrun-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: speedrun-operator
{{- end -}}

{{- define "speedrun-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "speedrun-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Namespaces where SpeedrunJobs run: training.namespaces, or the release namespace. */}}
{{- define "speedrun-operator.trainingNamespaces" -}}
{{- if .Values.training.namespaces -}}
{{- toJson .Values.training.namespaces -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{- define "speedrun-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "speedrun-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "speedrun-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "speedrun-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The ValidatingWebhookConfiguration the chart registers (cluster-scoped: the release's namespace in it). */}}
{{- define "speedrun-operator.webhookConfigurationName" -}}
{{- printf "%s-%s" (include "speedrun-operator.fullname" .) .Release.Namespace | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{- define "speedrun-operator.webhookCertSecretName" -}}
{{- printf "%s-webhook-tls" (include "speedrun-operator.fullname" .) | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{/* "cert-manager" or "helm": webhook.certificate with "auto" resolved against the cluster's APIs. */}}
{{- define "speedrun-operator.webhookCertificateSource" -}}
{{- if eq .Values.webhook.certificate "auto" -}}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1/Certificate" -}}cert-manager{{- else -}}helm{{- end -}}
{{- else -}}
{{- .Values.webhook.certificate -}}
{{- end -}}
{{- end -}}
