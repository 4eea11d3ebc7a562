namespace MLNetQuant.Core.Observers;

/// <summary>Tracks the global minimum and maximum of everything observed (PyTorch's MinMaxObserver).</summary>
public sealed class MinMaxObserver : RangeObserver
{
    /// <summary>Creates the observer for a per-tensor <paramref name="spec"/>.</summary>
    /// <exception cref="ArgumentException">A per-channel scheme (use <see cref="PerChannelMinMaxObserver"/>).</exception>
    public MinMaxObserver(QuantSpec spec) : base(spec, perChannel: false, nameof(MinMaxObserver))
    {
    }
}
