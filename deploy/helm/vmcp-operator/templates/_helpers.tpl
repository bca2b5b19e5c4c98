{{/* Name of the chart, overridable. */}}
{{- define "vmcp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name. */}}
{{- define "vmcp-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vmcp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vmcp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vmcp-operator.labels" -}}
{{ include "vmcp-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: vmcp-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "vmcp-operator.serviceAccountName" -}}
{{- default (include "vmcp-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The Secret holding the Pulumi passphrase, and its key. */}}
{{- define "vmcp-operator.passphraseSecret" -}}
{{- if .Values.state.existingSecret -}}
{{- .Values.state.existingSecret -}}
{{- else if .Values.state.passphrase -}}
{{- printf "%s-passphrase" (include "vmcp-operator.fullname" .) -}}
{{- else -}}
{{- fail "vmcp-operator: set state.passphrase (the chart makes a Secret) or state.existingSecret (a Secret you made, key state.existingSecretKey): the Pulumi state's secrets are encrypted with it" -}}
{{- end -}}
{{- end -}}

{{- define "vmcp-operator.passphraseKey" -}}
{{- if .Values.state.existingSecret -}}{{ .Values.state.existingSecretKey }}{{- else -}}passphrase{{- end -}}
{{- end -}}

{{/* True ("true") when state lives in the file backend on a volume. */}}
{{- define "vmcp-operator.fileBackend" -}}
{{- if and (not .Values.state.backendUrl) (not .Values.state.backendUrlSecret.name) -}}true{{- end -}}
{{- end -}}

{{- define "vmcp-operator.claimName" -}}
{{- default (printf "%s-state" (include "vmcp-operator.fullname" .)) .Values.state.persistence.existingClaim -}}
{{- end -}}

{{- define "vmcp-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* A duration such as 60s, 2m, 1h, 1500ms as whole seconds (rounded up). */}}
{{- define "vmcp-operator.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "ms" $d -}}{{- div (add (trimSuffix "ms" $d | int) 999) 1000 -}}
{{- else if hasSuffix "s" $d -}}{{- trimSuffix "s" $d | int -}}
{{- else if hasSuffix "m" $d -}}{{- mul (trimSuffix "m" $d | int) 60 -}}
{{- else if hasSuffix "h" $d -}}{{- mul (trimSuffix "h" $d | int) 3600 -}}
{{- else -}}{{- fail (printf "vmcp-operator: bad duration %q (expected e.g. 60s, 2m)" $d) -}}
{{- end -}}
{{- end -}}
