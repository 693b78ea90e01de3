using System.Net;
using System.Text.Json;
using Samsa.Keeper.Client;
using Xunit;

namespace Samsa.Keeper.Server.Tests;

/// <summary>The AdminServer serializes through a source-generated context (AdminJsonContext, for
/// the NativeAOT build). Every command's answer, with sessions, watches and ephemerals present so
/// that the nested lists and maps are not empty, must give the bytes the reflection serializer
/// gives for the same answer — and must not fail for a value type the context does not list.</summary>
public sealed class AdminJsonTests
{
    [Fact]
    public async Task Every_command_answers_the_reflection_serializers_bytes()
    {
        string dir = Path.Combine(Path.GetTempPath(), "keeper-adminjson-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var host = await KeeperHost.StartAsync(new KeeperConfig
            {
                DataDir = dir, ClientPort = 0, ClientPortAddress = "127.0.0.1", AdminEnableServer = false,
                FourLetterWhitelist = new HashSet<string> { "*" },
            });
            await using var client = await KeeperClient.ConnectAsync($"127.0.0.1:{host.LocalEndPoint.Port}");
            await client.CreateAsync("/a", "x"u8.ToArray(), Acls.OpenAclUnsafe);
            await client.CreateAsync("/a/e", null, Acls.OpenAclUnsafe, Samsa.Keeper.Client.CreateMode.Ephemeral);
            await client.GetDataAsync("/a", watch: true);
            await client.GetChildrenAsync("/a", watch: true);
            var admin = new AdminServer(host.Server, new IPEndPoint(IPAddress.Loopback, 0));
            var paths = AdminServer.CommandNames.Select(n => "/commands/" + n).Concat(["/commands", "/nope", "/commands/nope"]).ToList();
            Assert.Contains("/commands/stats", paths);
            foreach (var path in paths)
            {
                var (_, answer) = await admin.AnswerAsync(path);
                string generated = AdminServer.Json(answer);
                string reflection = JsonSerializer.Serialize(answer);
                Assert.Equal(reflection, generated);
            }
            // The nested shapes were really exercised (a session id with its ephemeral, a watched path).
            var (_, dump) = await admin.AnswerAsync("/commands/dump");
            Assert.Contains("\"/a/e\"", AdminServer.Json(dump));
            var (_, wchp) = await admin.AnswerAsync("/commands/watches_by_path");
            Assert.Contains("\"/a\":[", AdminServer.Json(wchp));
            var (_, cons) = await admin.AnswerAsync("/commands/connections");
            Assert.Contains("\"session_id\":\"0x", AdminServer.Json(cons));
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
