namespace Samsa.Keeper.Protocol;

/// <summary>Raised when jute input is malformed: a length that is negative (other than the
/// -1 null marker), larger than what remains of the input, or larger than jute.maxbuffer.
/// The server answers such a frame by closing the connection, as upstream does on an IOException.</summary>
public sealed class JuteException : Exception
{
    public JuteException(string message) : base(message) { }
}
