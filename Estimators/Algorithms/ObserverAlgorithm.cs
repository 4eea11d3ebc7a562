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
        QuantObserver observer;
        try
        {
            observer = ActivationObservers.Create(_method, spec, _percentile);
        }
        catch (ArgumentException e)
        {
            throw new QuantConfigException(plan.ConfigIndex, "quant_scheme", $"the {type} of '{plan.Name}': {e.Message}");
        }
        return new ObserverActivationQuantizer(type, observer, plan.Name);
    }
}
