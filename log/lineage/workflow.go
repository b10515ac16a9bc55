package lineage

import (
	"context"
	"encoding/binary"
	"fmt"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// tokenWorkflowRuns marks WorkflowRuns page tokens.
const tokenWorkflowRuns = 'v'

// WorkflowRun is one run of a workflow as the log says at a tree size.
type WorkflowRun struct {
	RunID string
	// FirstLeaf and LastLeaf are the run's first and last events below the
	// tree size (any workflow); Events counts them.
	FirstLeaf, LastLeaf uint64
	Events              int
	// From the run's events below the tree size: a RUN_START, a
	// RUN_COMPLETE, a RUN_FAIL.
	Started, Completed, Failed bool
	// StartTime is the event time of the first event (Unix ns, 0: none).
	StartTime int64
	Platform  string
}

// WorkflowRunsPage is a page of a workflow's runs, in run id order.
type WorkflowRunsPage struct {
	TreeSize uint64
	Runs     []WorkflowRun
	// Leaves are the first and last leaves of every run, to prove.
	Leaves        []uint64
	NextPageToken string
}

// WorkflowRuns lists the runs of a tenant's workflow that have an event
// naming the workflow below treeSize (0: the watermark), in run id order,
// limit at a time (0: DefaultPageSize, at most MaxPageSize). A workflow
// with no run is ErrQueryNotFound.
func (ix *Index) WorkflowRuns(ctx context.Context, tenant, workflowID, pageToken string, limit int, treeSize uint64) (*WorkflowRunsPage, error) {
	switch {
	case tenant == "":
		return nil, &QueryError{Field: "tenant", Reason: "required"}
	case workflowID == "":
		return nil, &QueryError{Field: "workflow_id", Reason: "required"}
	}
	limit, err := checkLimit(limit)
	if err != nil {
		return nil, &QueryError{Field: "page_size", Reason: err.(*QueryError).Reason}
	}
	size, err := ix.answerSize(treeSize)
	if err != nil {
		return nil, err
	}
	prefix := newKey(keyWfRun).str(tenant).str(workflowID)
	start := []byte(prefix)
	if pageToken != "" {
		pos, err := decodeToken(pageToken, tokenWorkflowRuns)
		if err != nil {
			return nil, err
		}
		// The smallest key after the last run of the previous page.
		start = append(prefix.str(string(pos)), 0)
	}
	page := &WorkflowRunsPage{TreeSize: size}
	var runs []string
	err = ix.store.Scan(ctx, start, prefixEnd(prefix), false, func(k, v []byte) error {
		kr := keyReader{b: k[len(prefix):]}
		run := kr.str()
		if kr.err != nil || len(kr.b) != 0 || len(v) != 8 {
			return fmt.Errorf("workflow run key %x: %w", k, errBadKey)
		}
		if binary.BigEndian.Uint64(v) >= size {
			return nil // named the workflow after the tree size
		}
		if len(runs) == limit {
			page.NextPageToken = encodeToken(tokenWorkflowRuns, []byte(runs[len(runs)-1]))
			return ErrStopScan
		}
		runs = append(runs, run)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs of workflow %q: %w", workflowID, err)
	}
	if len(runs) == 0 && pageToken == "" {
		return nil, fmt.Errorf("workflow %q: %w", workflowID, ErrQueryNotFound)
	}
	cited := map[uint64]bool{}
	for _, run := range runs {
		wr, err := ix.workflowRun(ctx, tenant, run, size)
		if err != nil {
			return nil, err
		}
		page.Runs = append(page.Runs, wr)
		cited[wr.FirstLeaf], cited[wr.LastLeaf] = true, true
	}
	page.Leaves = sortedLeaves(cited)
	return page, nil
}

// workflowRun sums up a run's events below size.
func (ix *Index) workflowRun(ctx context.Context, tenant, run string, size uint64) (WorkflowRun, error) {
	wr := WorkflowRun{RunID: run}
	p := newKey(keyRunEvent).str(tenant).str(run)
	err := ix.store.Scan(ctx, p, p.u64(size), false, func(k, v []byte) error {
		if len(k) != len(p)+8 || len(v) != 1 {
			return fmt.Errorf("run event key %x: %w", k, errBadKey)
		}
		leaf := binary.BigEndian.Uint64(k[len(p):])
		if wr.Events == 0 {
			wr.FirstLeaf = leaf
		}
		wr.LastLeaf = leaf
		wr.Events++
		switch provlogv1.Operation(v[0]) {
		case provlogv1.Operation_OPERATION_RUN_START:
			wr.Started = true
		case provlogv1.Operation_OPERATION_RUN_COMPLETE:
			wr.Completed = true
		case provlogv1.Operation_OPERATION_RUN_FAIL:
			wr.Failed = true
		}
		return nil
	})
	if err != nil {
		return WorkflowRun{}, fmt.Errorf("listing events of run %q: %w", run, err)
	}
	if wr.Events == 0 {
		// The workflow key is written with the run's first event naming
		// the workflow, which is also a run event.
		return WorkflowRun{}, fmt.Errorf("run %q has no events: %w", run, errBadKey)
	}
	r, err := ix.loadRecord(ctx, tenant, wr.FirstLeaf)
	if err != nil {
		return WorkflowRun{}, err
	}
	wr.StartTime, wr.Platform = r.EventTime, r.Platform
	return wr, nil
}
