// Command quickstart is a worked example: a small workflow instrumented
// with provlog's engine hooks (client/run) records its own provenance, then
// asks the log where its output came from and verifies the answer offline.
//
// Start a log, then run the workflow against it:
//
//	go run ./cmd/provlogd
//	go run ./examples/quickstart
//
// The workflow has two steps in one run: "clean" reads orders.csv and
// writes the paid orders to a staging file; "convert" reads the staging
// file, calls an exchange-rate API over HTTP (a local stand-in it starts
// itself) and writes revenue per customer in EUR. Every read, write and
// call is recorded by the hooks, with content digests; the steps are child
// runs of the workflow run. At the end it traces the output upstream and
// checks the trace with client.VerifyTrace against log.pub: the checkpoint
// signature, every inclusion proof, and every node and edge against the
// leaf that asserts it.
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/client/run"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type config struct {
	GRPCAddr string
	DataDir  string // where provlogd keeps admin.token and log.pub
	Tenant   string
	Orders   string
	OutDir   string
	Out      io.Writer
}

func main() {
	cfg := config{Out: os.Stdout}
	flag.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:8090", "provlogd gRPC address")
	flag.StringVar(&cfg.DataDir, "data-dir", "./provlog-data", "provlogd's data dir (admin.token, log.pub)")
	flag.StringVar(&cfg.Tenant, "tenant", "acme", "tenant to record for")
	flag.StringVar(&cfg.Orders, "orders", filepath.Join("examples", "quickstart", "orders.csv"), "input orders CSV")
	flag.StringVar(&cfg.OutDir, "out-dir", "", "where the staging and output files go (a new temp dir when empty)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runExample(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func runExample(ctx context.Context, cfg config) error {
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin.token"))
	if err != nil {
		return fmt.Errorf("couldn't read the log's token (is provlogd running with --data-dir %s?): %w", cfg.DataDir, err)
	}
	token := strings.TrimSpace(string(tok))
	pub, err := os.ReadFile(filepath.Join(cfg.DataDir, "log.pub"))
	if err != nil {
		return fmt.Errorf("couldn't read the log's public key: %w", err)
	}
	policy, err := client.ParsePolicy(strings.TrimSpace(string(pub)), nil)
	if err != nil {
		return err
	}
	if cfg.OutDir == "" {
		if cfg.OutDir, err = os.MkdirTemp("", "provlog-quickstart-"); err != nil {
			return err
		}
	}
	conn, err := grpc.NewClient(cfg.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()

	fx, stopFX, err := startRatesAPI()
	if err != nil {
		return err
	}
	defer stopFX()

	// The workflow, instrumented.
	rec := &run.Recorder{
		Appender:   run.LogAppender{Client: pb.NewLogServiceClient(conn), Token: token},
		Tenant:     cfg.Tenant,
		WorkflowID: "quickstart/revenue-eur",
	}
	httpClient := &http.Client{Transport: &run.Transport{}}
	staging := filepath.Join(cfg.OutDir, "orders_paid.csv")
	output := filepath.Join(cfg.OutDir, "revenue_eur.csv")

	ctx, r, err := rec.Start(ctx, "")
	if err != nil {
		return err
	}
	err = run.Step(ctx, "clean", nil, nil, func(ctx context.Context) error {
		b, err := run.ReadFile(ctx, cfg.Orders, "order_id", "customer", "amount_usd", "status")
		if err != nil {
			return err
		}
		rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			return fmt.Errorf("orders: %w", err)
		}
		var out bytes.Buffer
		w := csv.NewWriter(&out)
		w.Write([]string{"order_id", "customer", "amount_usd"})
		for _, row := range rows[1:] {
			if row[3] == "paid" {
				w.Write(row[:3])
			}
		}
		w.Flush()
		if err := run.WriteFile(ctx, staging, out.Bytes(), 0o644, "order_id", "customer", "amount_usd"); err != nil {
			return err
		}
		for _, f := range []string{"order_id", "customer", "amount_usd"} {
			run.FromContext(ctx).AddFieldLineage(run.FileURI(staging), f, "identity", &pb.FieldRef{Uri: run.FileURI(cfg.Orders), Field: f})
		}
		return nil
	})
	if err == nil {
		err = run.Step(ctx, "convert", nil, nil, func(ctx context.Context) error {
			b, err := run.ReadFile(ctx, staging, "customer", "amount_usd")
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fx+"/v1/rates?base=USD&symbols=EUR", nil)
			if err != nil {
				return err
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				return err
			}
			var rates struct{ Rates map[string]float64 }
			err = json.NewDecoder(resp.Body).Decode(&rates)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("rates: %w", err)
			}
			rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
			if err != nil {
				return err
			}
			sums := map[string]float64{}
			for _, row := range rows[1:] {
				usd, err := strconv.ParseFloat(row[2], 64)
				if err != nil {
					return fmt.Errorf("staging row %v: %w", row, err)
				}
				sums[row[1]] += usd * rates.Rates["EUR"]
			}
			customers := make([]string, 0, len(sums))
			for c := range sums {
				customers = append(customers, c)
			}
			slices.Sort(customers)
			var out bytes.Buffer
			w := csv.NewWriter(&out)
			w.Write([]string{"customer", "revenue_eur"})
			for _, c := range customers {
				w.Write([]string{c, strconv.FormatFloat(sums[c], 'f', 2, 64)})
			}
			w.Flush()
			if err := run.WriteFile(ctx, output, out.Bytes(), 0o644, "customer", "revenue_eur"); err != nil {
				return err
			}
			st := run.FromContext(ctx)
			st.AddFieldLineage(run.FileURI(output), "customer", "group by", &pb.FieldRef{Uri: run.FileURI(staging), Field: "customer"})
			st.AddFieldLineage(run.FileURI(output), "revenue_eur", "sum(amount_usd * rate)",
				&pb.FieldRef{Uri: run.FileURI(staging), Field: "amount_usd"}, &pb.FieldRef{Uri: fx + "/v1/rates", Field: "rates.EUR"})
			return nil
		})
	}
	if err := r.End(ctx, err); err != nil {
		return fmt.Errorf("workflow run %s: %w", r.ID(), err)
	}
	fmt.Fprintf(cfg.Out, "workflow run %s recorded; output %s\n", r.ID(), output)

	// Where did the output come from? Ask the log, and check the answer.
	lc := pb.NewLineageServiceClient(conn)
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	want := []string{run.FileURI(cfg.Orders), fx + "/v1/rates"}
	var resp *pb.TraceResponse
	deadline := time.Now().Add(30 * time.Second)
waiting:
	for {
		resp, err = lc.Trace(actx, &pb.TraceRequest{Tenant: cfg.Tenant,
			Start:     &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: run.FileURI(output)}},
			Direction: pb.Direction_DIRECTION_UPSTREAM, Depth: 10})
		switch {
		case status.Code(err) == codes.NotFound:
			// Not in a published checkpoint, or not indexed, yet.
		case err != nil:
			return fmt.Errorf("trace: %w", err)
		case missing(resp, want) == nil:
			break waiting
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 30s the trace still misses %v (last error: %v)", missing(resp, want), err)
		}
		// The log publishes a checkpoint and indexes it within a second or two.
		time.Sleep(200 * time.Millisecond)
	}
	if err := client.VerifyTrace(resp, policy); err != nil {
		return fmt.Errorf("the trace does not verify: %w", err)
	}
	fmt.Fprintf(cfg.Out, "upstream of %s (verified against log.pub, checkpoint of size %d):\n", output, resp.GetProofs().GetTreeSize())
	for _, n := range resp.GetNodes() {
		switch n.GetKind() {
		case pb.NodeKind_NODE_KIND_ASSET:
			fmt.Fprintf(cfg.Out, "  asset     %s (leaf %d)\n", n.GetAsset().GetUri(), n.GetLeafIndex())
		case pb.NodeKind_NODE_KIND_ACTIVITY:
			fmt.Fprintf(cfg.Out, "  activity  %s %s in run %s (leaf %d)\n", n.GetOperation(), n.GetEventId(), n.GetRunId(), n.GetLeafIndex())
		}
	}
	for _, e := range resp.GetEdges() {
		if e.GetKind() == pb.EdgeKind_EDGE_KIND_FIELD {
			fmt.Fprintf(cfg.Out, "  field     %s <- %s\n", e.GetToField(), e.GetFromField())
		}
	}
	return nil
}

// missing lists the URIs of want that resp has no asset node for.
func missing(resp *pb.TraceResponse, want []string) []string {
	var out []string
	for _, w := range want {
		found := false
		for _, n := range resp.GetNodes() {
			if n.GetAsset().GetUri() == w {
				found = true
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// startRatesAPI serves a fixed exchange rate on a loopback port: the
// stand-in for a real external API.
func startRatesAPI() (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"base":"USD","date":"2026-11-26","rates":{"EUR":0.92}}`)
	})}
	go srv.Serve(lis)
	return "http://" + lis.Addr().String(), func() {
		if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "rates API:", err)
		}
	}, nil
}
