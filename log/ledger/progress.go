package ledger

import (
	"context"
	"fmt"
)

// Progress is how far the log has got, in entries.
type Progress struct {
	// Sequenced is how many entries have been given an index.
	Sequenced uint64
	// Integrated is the size of the tree the storage has built (tiles and
	// entry bundles written).
	Integrated uint64
	// Published is the size of the latest published checkpoint.
	Published uint64
}

// Progress reads how many entries are sequenced, integrated and published.
// With the aws storage the first two come from tessera's coordination
// tables in the shared database, so they count every frontend's appends.
// The posix storage integrates each batch in the same step that sequences
// it, so there Sequenced is the integrated size.
func (l *Ledger) Progress(ctx context.Context) (Progress, error) {
	var p Progress
	if s, ok := l.store.(*mysqlStore); ok {
		err := s.db.QueryRowContext(ctx,
			"SELECT (SELECT next FROM SeqCoord WHERE id = 0), (SELECT seq FROM IntCoord WHERE id = 0)").Scan(&p.Sequenced, &p.Integrated)
		if err != nil {
			return Progress{}, fmt.Errorf("reading tessera's sequencing state: %w", err)
		}
	} else {
		n, err := l.reader.IntegratedSize(ctx)
		if err != nil {
			return Progress{}, fmt.Errorf("reading integrated size: %w", err)
		}
		p.Sequenced, p.Integrated = n, n
	}
	_, cp, err := l.Checkpoint(ctx)
	if err != nil {
		return Progress{}, err
	}
	p.Published = cp.Size
	return p, nil
}
