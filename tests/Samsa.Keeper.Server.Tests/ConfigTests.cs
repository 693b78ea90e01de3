using Samsa.Keeper.Server;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

public sealed class ConfigTests
{
    [Fact]
    public void Zoo_cfg_defaults_follow_upstream()
    {
        var c = KeeperConfig.Parse("dataDir=/var/zk\nclientPort=2182\n");
        Assert.Equal(2000, c.TickTime);
        Assert.Equal(4000, c.EffectiveMinSessionTimeout);
        Assert.Equal(40000, c.EffectiveMaxSessionTimeout);
        Assert.Equal(100000, c.SnapCount);
        Assert.Equal(60, c.MaxClientCnxns);
        Assert.True(c.ForceSync);
        Assert.Equal(3, c.AutopurgeSnapRetainCount);
        Assert.Equal(0, c.AutopurgePurgeInterval);
        Assert.True(c.IsFourLetterWordAllowed("srvr"));
        Assert.False(c.IsFourLetterWordAllowed("ruok"));
        Assert.Equal(Path.Combine("/var/zk", "version-2"), c.SnapDir);
        Assert.Equal(c.SnapDir, c.LogDir);
    }

    [Fact]
    public void Zoo_cfg_keys_are_read()
    {
        var c = KeeperConfig.Parse(
            "# comment\ntickTime=500\ndataDir=/d\ndataLogDir=/l\nminSessionTimeout=1500\nmaxSessionTimeout=9000\n" +
            "forceSync=no\nautopurge.snapRetainCount=1\nautopurge.purgeInterval=2\n4lw.commands.whitelist=ruok, stat\n" +
            "server.1=localhost:2888:3888\nsnapCount=10\n");
        Assert.Equal(500, c.TickTime);
        Assert.Equal(1500, c.EffectiveMinSessionTimeout);
        Assert.Equal(9000, c.EffectiveMaxSessionTimeout);
        Assert.False(c.ForceSync);
        Assert.Equal(3, c.AutopurgeSnapRetainCount); // upstream never keeps fewer than 3
        Assert.Equal(2, c.AutopurgePurgeInterval);
        Assert.True(c.IsFourLetterWordAllowed("stat"));
        Assert.False(c.IsFourLetterWordAllowed("srvr"));
        Assert.Equal(Path.Combine("/l", "version-2"), c.LogDir);
        Assert.Equal(10, c.SnapCount);
    }
}
