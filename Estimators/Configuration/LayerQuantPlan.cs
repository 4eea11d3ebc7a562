namespace MLNetQuant.Configuration;

/// <summary>How one module is quantized: the winning sub-config and a validated <see cref="Core.QuantSpec"/> per
/// quant type.</summary>
/// <param name="Name">Dotted module name from named_modules().</param>
/// <param name="OpType">The module's op type name (e.g. Conv2d).</param>
/// <param name="ConfigIndex">Index of the sub-config that won (the last match).</param>
/// <param name="Specs">The grid for each quant type to apply.</param>
/// <param name="QuantStartStep">Optimizer steps before quantization starts.</param>
public sealed record LayerQuantPlan(
    string Name,
    string OpType,
    int ConfigIndex,
    IReadOnlyDictionary<QuantType, Core.QuantSpec> Specs,
    int QuantStartStep);
