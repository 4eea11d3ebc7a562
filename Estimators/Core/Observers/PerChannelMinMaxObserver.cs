namespace MLNetQuant.Core.Observers;

/// <summary>Tracks the minimum and maximum of each channel along the spec's channel axis
/// (PyTorch's PerChannelMinMaxObserver).</summary>
public sealed class PerChannelMinMaxObserver : RangeObserver
{
    /// <summary>Creates the observer for a per-channel <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentException">A per-tensor scheme (use <see cref="MinMaxObserver"/>).</exception>
    public PerChannelMinMaxObserver(QuantSpec spec) : base(spec, perChannel: true, nameof(PerChannelMinMaxObserver))
    {
    }
}
