// Package benchdata is the benchmark workload's data: session keys of four
// short strings, their routes, and lookup copies of the keys. The library's
// own benchmarks and the bench module's comparison with other caches both
// use it, so their numbers are measured on the same keys.
package benchdata

import (
	"fmt"
	"strings"

	"github.com/switchboard-go/switchboard"
)

// LiveKeys is the number of stored session keys in every workload.
const LiveKeys = 100_000

// Key returns the i-th workload key: four short strings.
func Key(i int) switchboard.SessionKey {
	return switchboard.SessionKey{
		ChannelType: [...]string{"telegram", "slack", "discord", "matrix"}[i%4],
		BridgeID:    fmt.Sprintf("bot_%d", i%16),
		RoomID:      fmt.Sprintf("room_%d", i/4),
		ThreadID:    fmt.Sprintf("th_%d", i%4),
	}
}

// Route returns the i-th workload route.
func Route(i int) switchboard.Route {
	return switchboard.Route{ExternalRoomID: fmt.Sprintf("-100%d", i), ChannelType: "telegram", BridgeID: "bot"}
}

// Clone returns a copy of k whose strings share no memory with k's, as a
// key decoded from a request would.
func Clone(k switchboard.SessionKey) switchboard.SessionKey {
	return switchboard.SessionKey{ChannelType: strings.Clone(k.ChannelType), BridgeID: strings.Clone(k.BridgeID),
		RoomID: strings.Clone(k.RoomID), ThreadID: strings.Clone(k.ThreadID)}
}

// Lookups returns Clone copies of the first n keys.
func Lookups(n int) []switchboard.SessionKey {
	out := make([]switchboard.SessionKey, n)
	for i := range out {
		out[i] = Clone(Key(i))
	}
	return out
}
