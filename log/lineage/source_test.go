package lineage

import "github.com/transparency-dev/tessera"

// tessera's LogReader is a Source.
var _ Source = tessera.LogReader(nil)
