// Package bench compares Switchboard's memory backend with general-purpose
// Go caches on the same workload. It is its own module so that the library
// does not depend on the caches it is measured against.
//
// Run everything and print the side-by-side table:
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench

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

// Lookups returns copies of the first n keys whose strings share no memory
// with the stored ones, as keys decoded from a request would.
func Lookups(n int) []switchboard.SessionKey {
	out := make([]switchboard.SessionKey, n)
	for i := range out {
		k := Key(i)
		out[i] = switchboard.SessionKey{ChannelType: strings.Clone(k.ChannelType), BridgeID: strings.Clone(k.BridgeID),
			RoomID: strings.Clone(k.RoomID), ThreadID: strings.Clone(k.ThreadID)}
	}
	return out
}
