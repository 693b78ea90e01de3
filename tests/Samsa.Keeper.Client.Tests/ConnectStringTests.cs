using Xunit;

namespace Samsa.Keeper.Client.Tests;

public sealed class ConnectStringTests
{
    [Fact]
    public void Parses_servers_ports_and_chroot()
    {
        var cs = ConnectString.Parse("h1:2000, h2 ,[::1]:3000/app/one");
        Assert.Equal(new[] { ("h1", 2000), ("h2", 2181), ("::1", 3000) }, cs.Servers);
        Assert.Equal("/app/one", cs.Chroot);
        Assert.Null(ConnectString.Parse("h:1/").Chroot);
        Assert.Null(ConnectString.Parse("h:1").Chroot);
    }

    [Theory]
    [InlineData("")]
    [InlineData("h:0")]
    [InlineData("h:x")]
    [InlineData("h:1/app/")]
    [InlineData("h:1/a//b")]
    [InlineData("/app")]
    public void Rejects_bad_connect_strings(string s)
    {
        Assert.ThrowsAny<ArgumentException>(() => ConnectString.Parse(s));
    }
}
