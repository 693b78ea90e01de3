namespace Samsa.Testing;

/// <summary>
/// One <see cref="SamsaCluster"/> for a test class (<c>IClassFixture&lt;SamsaClusterFixture&gt;</c>) or
/// a collection (<c>[CollectionDefinition("kafka")] class KafkaCollection : ICollectionFixture&lt;SamsaClusterFixture&gt;</c>).
/// It depends on no xUnit package: the cluster starts in the constructor and stops on dispose
/// (IAsyncDisposable and IDisposable), which xUnit v2 (2.9) and v3 both call for fixtures, so one
/// Samsa.Testing serves either. Default: three brokers on files in a temp directory; derive to
/// choose (<c>public sealed class OneBroker() : SamsaClusterFixture(1, new() { InMemory = true });</c>).
/// Tests that use fault hooks on a shared cluster should call <see cref="ResetAsync"/> when done.
/// </summary>
public class SamsaClusterFixture : IAsyncDisposable, IDisposable
{
    private readonly SamsaCluster _cluster;

    public SamsaClusterFixture() : this(3) { }

    protected SamsaClusterFixture(int brokers, SamsaClusterOptions? options = null)
    {
        // A fixture's constructor cannot await; the start runs off the test's synchronization context.
        _cluster = Task.Run(() => SamsaCluster.StartAsync(brokers, keeper: true, options)).GetAwaiter().GetResult();
    }

    public SamsaCluster Cluster => _cluster;
    public string BootstrapServers => _cluster.BootstrapServers;
    public string ZooKeeperConnect => _cluster.ZooKeeperConnect;

    /// <summary>Undoes the fault hooks: request faults cleared, paused brokers resumed, isolated or
    /// cut-off ones healed, stopped or killed ones restarted (the cluster waits until all see all).</summary>
    public Task ResetAsync(CancellationToken cancellationToken = default) => _cluster.ResetFaultsAsync(cancellationToken);

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return _cluster.DisposeAsync();
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        Task.Run(() => _cluster.DisposeAsync().AsTask()).GetAwaiter().GetResult();
    }
}
