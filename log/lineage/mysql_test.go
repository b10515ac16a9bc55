package lineage_test

import (
	"testing"

	"github.com/provlog/provlog/log/ledger/awstest"
	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/lineage/lineagetest"
)

// TestMySQLStoreConformance runs the Store conformance suite against the
// MySQL store on the test MariaDB: one database per test, one table per
// store name.
func TestMySQLStoreConformance(t *testing.T) {
	awstest.ServerDSN(t) // skip or fail before the suite when absent
	dsns := map[*testing.T]string{}
	lineagetest.StoreConformance(t, func(t *testing.T, name string) lineage.Store {
		dsn, ok := dsns[t]
		if !ok {
			dsn = awstest.NewDatabase(t)
			dsns[t] = dsn
		}
		s, err := lineage.OpenMySQLStore(t.Context(), dsn, "lineage_"+tableSafe(name))
		if err != nil {
			t.Fatalf("OpenMySQLStore: %v", err)
		}
		return s
	})
}

func tableSafe(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
