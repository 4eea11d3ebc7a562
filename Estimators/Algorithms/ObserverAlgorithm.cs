using MLNetQuant.Configuration;
using MLNetQuant.Core.Observers;
using MLNetQuant.Training;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Post-training calibration (NNI's ObserverQuantizer): weights on the grid of their range, activations on
/// the grid an observer (MinMax, Histogram or Percentile) computes from calibration batches. No gradient, no
/// training; BN folded first.</summary>
internal sealed class ObserverAlgorithm : QuantAlgorithm
{
    private readonly CalibrationMethod _method;
    private readonly double _percentile;

    public ObserverAlgorithm(CalibrationMethod method, double percentile)
    {
        _method = method;
        _percentile = percentile;
    }

    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.Observer;

    public override bool FoldsBatchNorm => true;

    public override IReadOnlyList<QuantConfig> DefaultConfig => WeightsAndInputs(8);

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device)
    {
        var spec = plan.Specs[type];
        if (type == QuantType.Weight) return new MinMaxWeightQuantizer(spec);
        QuantObserver observer = _method switch
        {
            CalibrationMethod.MinMax when spec.Scheme.IsPerChannel() => new PerChannelMinMaxObserver(spec),
            CalibrationMethod.MinMax => new MinMaxObserver(spec),
            _ when spec.Scheme.IsPerChannel() => throw new QuantConfigException(plan.ConfigIndex, "quant_scheme",
                $"{_method} calibration of the {type} of '{plan.Name}' is per tensor; use a per-tensor scheme or MinMax."),
            CalibrationMethod.Histogram => new HistogramObserver(spec),
            CalibrationMethod.Percentile => new PercentileObserver(spec, _percentile),
            _ => throw new ArgumentOutOfRangeException(nameof(_method), _method, "Unknown calibration method."),
        };
        return new ObserverActivationQuantizer(type, observer, plan.Name);
    }
}
