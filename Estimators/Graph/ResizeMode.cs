namespace MLNetQuant.Graph;

/// <summary>A Resize node's interpolation attributes.</summary>
/// <param name="Interpolation"><c>mode</c>: nearest, linear or cubic.</param>
/// <param name="Transform"><c>coordinate_transformation_mode</c>.</param>
/// <param name="NearestRounding"><c>nearest_mode</c>.</param>
/// <param name="CubicCoefficient"><c>cubic_coeff_a</c>.</param>
/// <param name="ExcludeOutside"><c>exclude_outside</c>.</param>
/// <param name="Antialias"><c>antialias</c> (opset 18).</param>
internal sealed record ResizeMode(string Interpolation, string Transform, string NearestRounding, float CubicCoefficient,
    bool ExcludeOutside, bool Antialias);
