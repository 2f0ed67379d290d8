// Command verify receives eventtrigger deliveries and verifies their Standard Webhooks
// signatures.
//
//	EVENTTRIGGER_SIGNING_SECRET=whsec_... PORT=9001 go run .
//
// It answers 204 to a delivery whose signature is good (and prints `verified <webhook-id>
// <body>`), 400 to anything else. It listens on 127.0.0.1 unless HOST says otherwise.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	webhook, err := standardwebhooks.NewWebhook(os.Getenv("EVENTTRIGGER_SIGNING_SECRET"))
	if err != nil {
		log.Fatalf("EVENTTRIGGER_SIGNING_SECRET must be the trigger's signing secret (whsec_...): %v", err)
	}
	address := net.JoinHostPort(getenv("HOST", "127.0.0.1"), getenv("PORT", "9001"))

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The raw bytes exactly as they arrived: the signature covers these bytes, and JSON
		// decoded and encoded again (other spacing, key order or escapes) is different
		// bytes that no longer match it.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Also refuses a webhook-timestamp more than 5 minutes away from now, so a
		// captured delivery cannot be replayed later.
		if err := webhook.Verify(body, r.Header); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// Handle the event here (json.Unmarshal(body, ...)). A delivery can arrive more
		// than once: webhook-id is the same on every attempt, so use it to skip repeats.
		fmt.Printf("verified %s %s\n", r.Header.Get("webhook-id"), body)
		w.WriteHeader(http.StatusNoContent)
	})

	server := &http.Server{Addr: address, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s", address)
	log.Fatal(server.ListenAndServe())
}

// getenv is the environment variable `name`, or `fallback` when it is unset or empty.
func getenv(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}
