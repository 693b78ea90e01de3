using System.Text;
using Samsa.Kafka.Protocol;
using Xunit;

namespace Samsa.Kafka.Protocol.Tests;

public class ErrorCodeTests
{
    // Numbers, names and retriability as published by upstream (Errors.java and the protocol guide's
    // error table); a client compares these, so they must match exactly.
    [Theory]
    [InlineData(-1, "UNKNOWN_SERVER_ERROR", false)]
    [InlineData(0, "NONE", false)]
    [InlineData(1, "OFFSET_OUT_OF_RANGE", false)]
    [InlineData(3, "UNKNOWN_TOPIC_OR_PARTITION", true)]
    [InlineData(6, "NOT_LEADER_OR_FOLLOWER", true)]
    [InlineData(7, "REQUEST_TIMED_OUT", true)]
    [InlineData(10, "MESSAGE_TOO_LARGE", false)]
    [InlineData(15, "COORDINATOR_NOT_AVAILABLE", true)]
    [InlineData(16, "NOT_COORDINATOR", true)]
    [InlineData(25, "UNKNOWN_MEMBER_ID", false)]
    [InlineData(27, "REBALANCE_IN_PROGRESS", false)]
    [InlineData(29, "TOPIC_AUTHORIZATION_FAILED", false)]
    [InlineData(35, "UNSUPPORTED_VERSION", false)]
    [InlineData(36, "TOPIC_ALREADY_EXISTS", false)]
    [InlineData(41, "NOT_CONTROLLER", true)]
    [InlineData(47, "INVALID_PRODUCER_EPOCH", false)]
    [InlineData(51, "CONCURRENT_TRANSACTIONS", true)]
    [InlineData(58, "SASL_AUTHENTICATION_FAILED", false)]
    [InlineData(74, "FENCED_LEADER_EPOCH", true)]
    [InlineData(79, "MEMBER_ID_REQUIRED", false)]
    [InlineData(89, "THROTTLING_QUOTA_EXCEEDED", true)]
    [InlineData(90, "PRODUCER_FENCED", false)]
    [InlineData(100, "UNKNOWN_TOPIC_ID", true)]
    [InlineData(110, "FENCED_MEMBER_EPOCH", false)]
    [InlineData(120, "TRANSACTION_ABORTABLE", false)]
    [InlineData(128, "INVALID_REGULAR_EXPRESSION", false)]
    public void WellKnownCodesMatchUpstream(short code, string wireName, bool retriable)
    {
        var error = (ErrorCode)code;
        Assert.True(Enum.IsDefined(error));
        Assert.Equal(wireName, ErrorCodes.WireName(error));
        Assert.Equal(retriable, ErrorCodes.IsRetriable(error));
    }

    [Fact]
    public void EnumMembersUseProtocolNames()
    {
        Assert.Equal((short)6, (short)ErrorCode.NotLeaderOrFollower);
        Assert.Equal((short)-1, (short)ErrorCode.UnknownServerError);
        Assert.Equal((short)90, (short)ErrorCode.ProducerFenced);
        Assert.Equal((short)17, (short)ErrorCode.InvalidTopicException);
    }

    [Fact]
    public void EveryEnumValueHasItsOwnWireNameAndMessage()
    {
        var seen = new HashSet<string>();
        foreach (var error in Enum.GetValues<ErrorCode>())
        {
            string wire = ErrorCodes.WireName(error);
            // The C# member is the wire name in PascalCase, so the table row and the enum agree.
            Assert.Equal(ToUpperSnake(error.ToString()), wire);
            Assert.True(seen.Add(wire), $"duplicate wire name {wire}");
            Assert.False(string.IsNullOrWhiteSpace(ErrorCodes.DefaultMessage(error)));
        }
    }

    [Fact]
    public void CodesAreContiguousFromLowestToHighest()
    {
        var values = Enum.GetValues<ErrorCode>().Select(e => (short)e).OrderBy(v => v).ToArray();
        Assert.Equal(ErrorCodes.LowestKnown, values[0]);
        Assert.Equal(ErrorCodes.HighestKnown, values[^1]);
        // Upstream has no gaps between -1 and its highest code; a gap here means a code was dropped.
        for (int i = 1; i < values.Length; i++)
            Assert.Equal(values[i - 1] + 1, values[i]);
    }

    [Fact]
    public void UnknownWireValuesBecomeUnknownServerError()
    {
        Assert.Equal(ErrorCode.UnknownServerError, ErrorCodes.FromWire(999));
        Assert.Equal(ErrorCode.UnknownServerError, ErrorCodes.FromWire(-2));
        Assert.Equal(ErrorCode.NotCoordinator, ErrorCodes.FromWire(16));
        Assert.False(ErrorCodes.IsRetriable((ErrorCode)999));
        Assert.Equal("UNKNOWN_ERROR_CODE_999", ErrorCodes.WireName((ErrorCode)999));
    }

    private static string ToUpperSnake(string pascal)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            if (i > 0 && char.IsUpper(pascal[i]))
                sb.Append('_');
            sb.Append(char.ToUpperInvariant(pascal[i]));
        }
        return sb.ToString();
    }
}
