package provlogv1

import _ "embed"

// OpenAPI is the OpenAPI (Swagger 2.0) description of the REST mapping,
// generated from the protos by scripts/gen-proto.sh. provlogd serves it at
// /openapi.json.
//
//go:embed provlog.swagger.json
var OpenAPI []byte
