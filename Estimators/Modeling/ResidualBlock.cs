using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Modeling;

/// <summary>A residual block: <c>branch(x) + shortcut(x)</c>, the building block of ResNet-style nets. TorchSharp has
/// no graph capture, so MLNetQuant walks models; this module is how a sum of two paths is expressed in a walkable
/// model. The shortcut defaults to the identity.</summary>
public sealed class ResidualBlock : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> branch;
    private readonly nn.Module<Tensor, Tensor> shortcut;

    /// <summary>Creates the block. Its children are named <c>branch</c> and <c>shortcut</c> in named_modules().</summary>
    /// <param name="branch">The residual path (typically conv–BN–ReLU–conv–BN).</param>
    /// <param name="shortcut">The skip path; null for the identity (a 1×1 conv–BN when shapes change).</param>
    public ResidualBlock(nn.Module<Tensor, Tensor> branch, nn.Module<Tensor, Tensor>? shortcut = null)
        : base(nameof(ResidualBlock))
    {
        this.branch = branch ?? throw new ArgumentNullException(nameof(branch));
        this.shortcut = shortcut ?? nn.Identity();
        RegisterComponents();
    }

    /// <summary>The residual path.</summary>
    public nn.Module<Tensor, Tensor> Branch => branch;

    /// <summary>The skip path.</summary>
    public nn.Module<Tensor, Tensor> Shortcut => shortcut;

    /// <inheritdoc />
    public override Tensor forward(Tensor input)
    {
        using var b = branch.call(input);
        using var s = shortcut.call(input);
        return b.add(s, CachedScalars.One);
    }
}
