namespace MLNetQuant.Training;

/// <summary>The optimizer that trains the latent weights (and LSQ's steps).</summary>
public enum QuantOptimizer
{
    /// <summary>Stochastic gradient descent with momentum and weight decay.</summary>
    Sgd,

    /// <summary>Adam (weight decay as L2, as torch.optim.Adam).</summary>
    Adam,
}
