namespace MLNetQuant.Core.Observers;

/// <summary>Exponential moving average of each batch's minimum and maximum (PyTorch's MovingAverageMinMaxObserver):
/// the first batch initialises the range, later ones move it by <c>v += c · (batch − v)</c> in float32.</summary>
public sealed class MovingAverageMinMaxObserver : RangeObserver
{
    /// <summary>Creates the observer for a per-tensor <paramref name="spec"/>.</summary>
    /// <param name="spec">A per-tensor grid.</param>
    /// <param name="averagingConstant">Weight c of the newest batch, in (0, 1]; PyTorch's default is 0.01.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="averagingConstant"/> outside (0, 1].</exception>
    /// <exception cref="ArgumentException">A per-channel scheme (use <see cref="MovingAveragePerChannelMinMaxObserver"/>).</exception>
    public MovingAverageMinMaxObserver(QuantSpec spec, double averagingConstant = 0.01)
        : base(spec, perChannel: false, nameof(MovingAverageMinMaxObserver), averagingConstant)
    {
    }
}
