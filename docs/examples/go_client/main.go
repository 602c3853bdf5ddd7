// Calling Gantry from Go with generated stubs: TLS, an API key, a session from create to
// delete, its output, and a streamed capability. docs/clients.md walks through it; the test
// suite builds it with Debian 12's Go packages (build.sh) and runs it against the quickstart
// fleet, as it does the Python example.
//
//	source .gantry/client.env && docs/examples/go_client/build.sh && /tmp/gantry-go-client/gantry-client
//
// Needs GANTRY_ADDR, GANTRY_CA and GANTRY_TOKEN (the API key).
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	gantry "gantry.example/gantry/v1"
)

// apiKey sends "authorization: Bearer <key>" on every call; gRPC sends it only over TLS.
type apiKey string

func (k apiKey) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}
func (apiKey) RequireTransportSecurity() bool { return true }

func main() {
	// 1. A TLS channel that verifies the server against the cluster CA (and nothing else), with
	//    the API key on every call. A client certificate would go in tls.Config.Certificates.
	pem, err := os.ReadFile(os.Getenv("GANTRY_CA"))
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatal("GANTRY_CA holds no certificate")
	}
	conn, err := grpc.Dial(os.Getenv("GANTRY_ADDR"),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots})),
		grpc.WithPerRPCCredentials(apiKey(os.Getenv("GANTRY_TOKEN"))))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	sessions := gantry.NewSessionServiceClient(conn)
	call := func(d time.Duration) (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), d)
	}

	// 2. A session on one GPU. The request_id makes the call safe to retry: the same id returns
	//    the same session, never a second one.
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		log.Fatal(err)
	}
	request := &gantry.CreateSessionRequest{
		RequestId: "go-example-" + hex.EncodeToString(id),
		Spec: &gantry.SessionSpec{
			Command:   []string{"/bin/sh", "-c", `echo "hello from $CUDA_VISIBLE_DEVICES"; sleep 600`},
			Resources: &gantry.ResourceRequirements{Gpus: &gantry.GpuRequirements{Count: 1}},
			Labels:    map[string]string{"example": "go"},
		},
	}
	var session *gantry.Session
	for attempt := 0; ; attempt++ {
		ctx, cancel := call(30 * time.Second)
		session, err = sessions.CreateSession(ctx, request)
		cancel()
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || attempt == 4 {
			log.Fatalf("CreateSession: %v", err) // codes.ResourceExhausted when no GPU is free
		}
	}
	// Answered once durable: SCHEDULED, its GPU reserved on a controller; the process starts next.
	fmt.Printf("session %s: %s on controller %s\n", session.Id, session.Phase, session.ControllerId)
	// However the rest goes, the session is stopped and its GPU freed at the end.
	defer func() {
		ctx, cancel := call(30 * time.Second)
		defer cancel()
		ended, err := sessions.DeleteSession(ctx, &gantry.DeleteSessionRequest{Id: session.Id})
		if err != nil {
			log.Fatalf("DeleteSession: %v", err)
		}
		fmt.Println("deleted:", ended.Phase)
	}()

	// 3. Follow it until it runs (WatchSession streams the session on every change).
	ctx, cancel := call(60 * time.Second)
	watch, err := sessions.WatchSession(ctx, &gantry.WatchSessionRequest{Id: session.Id})
	for err == nil {
		var update *gantry.Session
		if update, err = watch.Recv(); err == nil && (update.Phase == gantry.SessionPhase_SESSION_PHASE_RUNNING ||
			update.Phase == gantry.SessionPhase_SESSION_PHASE_FAILED) {
			fmt.Println("phase:", update.Phase, "on", update.WorkerId, "GPUs", update.GpuUuids)
			break
		}
	}
	cancel()

	// 4. Its first line of output, as it comes.
	ctx, cancel = call(30 * time.Second)
	logs, err := sessions.StreamLogs(ctx, &gantry.StreamLogsRequest{Id: session.Id, Follow: true})
	if err == nil {
		if entry, err := logs.Recv(); err == nil {
			fmt.Println("log:", entry.Message)
		}
	}
	cancel()

	// 5. A capability: chunks arrive as the handler produces them.
	ctx, cancel = call(30 * time.Second)
	stream, err := gantry.NewInvokeServiceClient(conn).Invoke(ctx,
		&gantry.InvokeRequest{Capability: "demo/tokens", Payload: []byte("tokens from a GPU worker")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print("invoke: ")
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		} else if err != nil {
			log.Fatalf("Invoke: %v", err) // the call's status
		}
		fmt.Print(string(chunk.Data))
	}
	fmt.Println()
	cancel()

	// 6. Errors carry a status code and a message that names what is wrong.
	ctx, cancel = call(10 * time.Second)
	_, err = sessions.GetSession(ctx, &gantry.GetSessionRequest{Id: "no-such-session"})
	cancel()
	fmt.Printf("error: %s: %s\n", status.Code(err), status.Convert(err).Message())
}
