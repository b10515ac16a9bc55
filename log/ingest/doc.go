// Package ingest takes provenance from where workflows already report it,
// with no manual entry: OpenLineage events (POST /api/v1/lineage, what
// OpenLineage's HTTP transport sends), webhooks of no-code platforms
// (POST /v1/hooks/{source}, HMAC-signed, mapped by a declarative file per
// source), and reports the fields sources send that their schema does not
// know (GET /v1/ingest/drift, metric provlog_ingest_drift_total).
//
// Every ingested event goes through the log's own gRPC API, in process:
// LogService.AppendBatch on the server's in-process connection with a
// bearer token (the caller's for OpenLineage, the source's own for
// webhooks). Authorization, validation, idempotency and metrics are those
// of any gRPC append; a mapped event that the log refuses is answered with
// the error the log gave, naming the field of the mapped event.
//
// # OpenLineage
//
// A request body is one event (a JSON object) or a batch (a JSON array),
// optionally gzip-compressed (Content-Encoding: gzip). The tenant is the
// "tenant" query parameter, else the X-Provlog-Tenant header, else the
// caller's only tenant. Each event is validated against the spec version
// its schemaURL declares (https://openlineage.io/spec/V/OpenLineage.json,
// V in 1-0-0 … 2-0-2; the fragment #/$defs/RunEvent, DatasetEvent or
// JobEvent, or the kind inferred from the event). The schemas, in olspec/,
// are provlog's transcription of the spec's constraints on the event, run,
// job, datasets, base facets, and the parent-run and column-lineage facets
// it maps. One invalid event refuses the whole request: nothing is
// appended, and the answer names the payload field ("run.runId",
// "[2].outputs[0].facets.columnLineage.fields.email").
//
// Mapping to a provenance event:
//
//	event id        "ol:" + hex SHA-256 of the event's canonical JSON (keys
//	                sorted, no white space, numbers as sent): a re-sent event
//	                is a duplicate, whatever its key order or white space
//	extensions      openlineage.digest = "sha256:" + that hash (the original
//	                event's digest, kept in the leaf); openlineage.schemaURL,
//	                openlineage.kind, openlineage.eventType, openlineage.job
//	operation       START -> RUN_START, COMPLETE -> RUN_COMPLETE, FAIL and
//	                ABORT -> RUN_FAIL; RUNNING, OTHER, JobEvent: TRANSFORM
//	                (inputs and outputs), WRITE (outputs), READ (inputs), and
//	                with no datasets the event is skipped (answered
//	                "skipped", nothing moved); DatasetEvent: TRANSFORM when
//	                its column lineage names sources, else WRITE
//	event_time      eventTime
//	actor           SERVICE, id = producer
//	workflow        platform = jobType facet's integration, else the
//	                processing_engine facet's name, else "openlineage"
//	                (lower case); platform_version = processing_engine
//	                version; run_id = run.runId (runless events:
//	                "openlineage-static:" + the hash); parent_run_id = the
//	                parent facet's run.runId; workflow_id = parent job
//	                "namespace/name" with step_id = job name, or without a
//	                parent, workflow_id = job "namespace/name"
//	inputs/outputs  assets: uri = DatasetURI(namespace, name), version =
//	                the version facet's datasetVersion, fields = the schema
//	                facet's field names; datasets named by column lineage are
//	                inputs too
//	field_lineage   each output's columnLineage facet: one entry per output
//	                field, sources = its inputFields, transformation = the
//	                transformations' TYPE/SUBTYPE joined by ","
//	other facets    every facet but parent, version and columnLineage (run,
//	                job, dataset, input and output facets; the schema and
//	                jobType facets too, for what they hold beyond the
//	                mapped names) is kept in extensions as
//	                "openlineage.<where>.<facet>" = its canonical JSON, or
//	                its digest when longer than 4096 bytes; past 60 entries
//	                names go to openlineage.facets.overflow. The event digest
//	                covers everything, so the original event can always be
//	                checked against the leaf.
//
// Facets outside the spec's standard set are reported as unknown_facet
// drift; properties the schema does not declare (where it does not allow
// additional ones) as unknown_field drift; refused events as invalid or
// unknown_version.
package ingest
