package switchboard_test
import ("testing";"context";"github.com/switchboard-go/switchboard")
func BenchmarkTmpSmall(b *testing.B){
  m, _ := switchboard.New(switchboard.Config{}); defer m.Close(); ctx := context.Background()
  keys := make([]switchboard.SessionKey, 1000)
  for i := range keys { k := benchKey(i); m.Set(ctx, k, benchRoute(i)); keys[i] = cloneKey(k) }
  b.Run("get", func(b *testing.B){ for i := range b.N { if _, err := m.Get(ctx, keys[i%1000]); err != nil { b.Fatal(err) } } })
  b.Run("resolve", func(b *testing.B){ for i := range b.N { if _, err := m.Resolve(ctx, keys[i%1000]); err != nil { b.Fatal(err) } } })
  r := benchRoute(1)
  b.Run("set", func(b *testing.B){ for i := range b.N { if err := m.Set(ctx, keys[i%1000], r); err != nil { b.Fatal(err) } } })
}
