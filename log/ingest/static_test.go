package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"

	"github.com/provlog/provlog/log/ingest"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// TestMapStaticEvents: DatasetEvent and JobEvent (spec 2-0-x) are mapped
// too; a batch error names the event's position.
func TestMapStaticEvents(t *testing.T) {
	const base = `"eventTime":"2026-11-26T10:00:00Z","producer":"https://github.com/acme/catalog-sync"`
	const facet = `"_producer":"https://github.com/acme/catalog-sync","_schemaURL":"https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"`
	for _, tc := range []struct {
		name, body string
		op         pb.Operation // 0: skipped
		inputs     int
		field      string // error field, when refused
	}{
		{"dataset event with column lineage", `{"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",` + base + `,
			"dataset":{"namespace":"bigquery","name":"acme.marts.revenue","facets":{"columnLineage":{` + facet + `,
			"fields":{"revenue":{"inputFields":[{"namespace":"bigquery","name":"acme.raw.orders","field":"amount"}]}}}}}}`,
			pb.Operation_OPERATION_TRANSFORM, 1, ""},
		{"dataset event alone", `{"schemaURL":"https://openlineage.io/spec/2-0-1/OpenLineage.json#/$defs/DatasetEvent",` + base + `,
			"dataset":{"namespace":"file","name":"/data/x.csv"}}`, pb.Operation_OPERATION_WRITE, 0, ""},
		{"job event", `{"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",` + base + `,
			"job":{"namespace":"dbt","name":"marts.revenue"},"inputs":[{"namespace":"bigquery","name":"a.b.c"}],"outputs":[{"namespace":"bigquery","name":"a.b.d"}]}`,
			pb.Operation_OPERATION_TRANSFORM, 1, ""},
		{"job event without datasets", `{"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",` + base + `,
			"job":{"namespace":"dbt","name":"marts.revenue"}}`, 0, 0, ""},
		{"job event with a run", `{"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",` + base + `,
			"job":{"namespace":"dbt","name":"x"},"run":{"runId":"01932a4e-7c10-7a3b-9c2e-4f1d2b3c4d5e"}}`, 0, 0, ""},
		{"dataset event in 1-0-5", `{"schemaURL":"https://openlineage.io/spec/1-0-5/OpenLineage.json#/$defs/DatasetEvent",` + base + `,
			"dataset":{"namespace":"file","name":"/x"}}`, 0, 0, "schemaURL"},
		{"batch error position", `[{"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",` + base + `,"job":{"namespace":"a","name":"b"}},
			{"schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",` + base + `,"job":{"namespace":"a","name":"b"},"run":{"runId":"nope"}}]`,
			0, 0, "[1].run.runId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := ingest.MapOpenLineage([]byte(tc.body), "acme")
			if tc.field != "" || tc.name == "job event with a run" {
				se, ok := err.(*ingest.SchemaError)
				if !ok || !strings.HasPrefix(se.Field, tc.field) {
					t.Fatalf("err %v, want a schema error at %q", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ev := evs[0]
			if tc.op == 0 {
				if ev != nil {
					t.Fatalf("want skipped, got %v", ev)
				}
				return
			}
			if ev.GetOperation() != tc.op || len(ev.GetInputs()) != tc.inputs || !strings.HasPrefix(ev.GetWorkflow().GetRunId(), "openlineage-static:") {
				t.Errorf("mapped %v", ev)
			}
			if err := event.Validate(ev, time.Now()); err != nil {
				t.Errorf("the log would refuse it: %v", err)
			}
		})
	}
}
