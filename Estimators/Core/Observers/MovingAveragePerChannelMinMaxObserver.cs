namespace MLNetQuant.Core.Observers;

/// <summary>Per-channel exponential moving average of each batch's minimum and maximum
/// (PyTorch's MovingAveragePerChannelMinMaxObserver).</summary>
public sealed class MovingAveragePerChannelMinMaxObserver : RangeObserver
{
    /// <summary>Creates the observer for a per-channel <paramref name="spec"/>.</summary>
    /// <param name="spec">A per-channel grid.</param>
    /// <param name="averagingConstant">Weight c of the newest batch, in (0, 1]; PyTorch's default is 0.01.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="averagingConstant"/> outside (0, 1].</exception>
    /// <exception cref="ArgumentException">A per-tensor scheme (use <see cref="MovingAverageMinMaxObserver"/>).</exception>
    public MovingAveragePerChannelMinMaxObserver(QuantSpec spec, double averagingConstant = 0.01)
        : base(spec, perChannel: true, nameof(MovingAveragePerChannelMinMaxObserver), averagingConstant)
    {
    }
}
