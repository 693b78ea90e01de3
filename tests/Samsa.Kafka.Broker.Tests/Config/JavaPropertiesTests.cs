using Samsa.Kafka.Broker.Config;

namespace Samsa.Kafka.Broker.Tests.Config;

public class JavaPropertiesTests
{
    [Fact]
    public void ParsesUpstreamServerPropertiesShapes()
    {
        var text = "# comment\n! also a comment\n\n" +
                   "broker.id=0\n" +
                   "listeners = PLAINTEXT://localhost:9092\n" +
                   "log.dirs:/tmp/kafka-logs\n" +
                   "num.partitions 3\n" +
                   "   zookeeper.connect=localhost:2181\n";
        var p = JavaProperties.Parse(text);
        Assert.Equal("0", p["broker.id"]);
        Assert.Equal("PLAINTEXT://localhost:9092", p["listeners"]);
        Assert.Equal("/tmp/kafka-logs", p["log.dirs"]);
        Assert.Equal("3", p["num.partitions"]);
        Assert.Equal("localhost:2181", p["zookeeper.connect"]);
        Assert.Equal(5, p.Count);
    }

    [Fact]
    public void JoinsContinuationLinesAndDropsTheirLeadingWhitespace()
    {
        var p = JavaProperties.Parse("listeners=PLAINTEXT://a:1,\\\n    SSL://b:2\nnext=x\n");
        Assert.Equal("PLAINTEXT://a:1,SSL://b:2", p["listeners"]);
        Assert.Equal("x", p["next"]);
    }

    [Fact]
    public void EvenNumberOfTrailingBackslashesIsNotAContinuation()
    {
        var p = JavaProperties.Parse("path=C:\\\\\nother=1\n");
        Assert.Equal("C:\\", p["path"]);
        Assert.Equal("1", p["other"]);
    }

    [Fact]
    public void DecodesEscapesInKeysAndValues()
    {
        var p = JavaProperties.Parse("a\\=b\\:c\\ d=tab\\there\\u0041\\n\n");
        Assert.Equal("tab\there" + "A\n", p["a=b:c d"]);
    }

    [Fact]
    public void CommentMarkerInsideValueIsData_AndLaterKeyWins()
    {
        var p = JavaProperties.Parse("k=v # not a comment\nk=second\nempty=\nbare\n");
        Assert.Equal("second", p["k"]);
        Assert.Equal("", p["empty"]);
        Assert.Equal("", p["bare"]);
    }

    [Fact]
    public void HandlesCrLfLineEndings()
    {
        var p = JavaProperties.Parse("a=1\r\nb=2\r\n");
        Assert.Equal("1", p["a"]);
        Assert.Equal("2", p["b"]);
    }

    [Fact]
    public void MalformedUnicodeEscapeIsRejected()
    {
        Assert.Throws<FormatException>(() => JavaProperties.Parse("a=\\u12"));
    }
}
