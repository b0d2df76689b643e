"""PCA whitening and k-reciprocal re-ranking as look-alike levers (issue 23), measured outside
lookbook before building them.

    .bench-venv/bin/python measure/levers.py full.db

On an embedded catalogue it recomputes `lookbook eval`'s held-out P@10 by articleType (the same
split, `sample::is_held_out`, and the same alpha query expansion, n 5, alpha 3), micro, macro
over types and on rare types (under 100 training-side products), first for the stored vectors
(it must print what `lookbook eval` prints for model-plain and model), then for the vectors
centred, projected on the catalogue's top d principal directions and divided by
(eigenvalue + shrink * mean eigenvalue) ** p; then k-reciprocal re-ranking (Zhong et al. 2017,
without its local expansion): the Jaccard distance of the k1-reciprocal neighbour sets, weighted
by exp(cosine), mixed with the (expanded) query's distance at weight lam. Numpy only, about a
minute on the shared catalogue. Not part of the test suite.
"""
import sqlite3, sys, numpy as np
M=(1<<64)-1
def sm(x):
    x=(x+0x9E3779B97F4A7C15)&M
    z=x; z=((z^(z>>30))*0xBF58476D1CE4E5B9)&M; z=((z^(z>>27))*0x94D049BB133111EB)&M; return z^(z>>31)
con=sqlite3.connect(sys.argv[1] if len(sys.argv) > 1 else 'catalog.db')
active=con.execute("select value from settings where key='active_model'").fetchone()[0]
rows=con.execute("select e.product_id, e.vector, c.name from embeddings e join products p on p.id=e.product_id join categories c on c.id=p.category_id where e.model_id=?", (int(active),)).fetchall()
ids=np.array([r[0] for r in rows]); X=np.stack([np.frombuffer(r[1],dtype='<f4') for r in rows]).astype(np.float64); lab=np.array([r[2] for r in rows])
X/=np.linalg.norm(X,axis=1,keepdims=True)
held=np.array([sm(int(i))%5==0 for i in ids]); train=~held
q=np.where(held)[0]
tc={}
for l in lab[train]: tc[l]=tc.get(l,0)+1
def evalp(V, qe=False):
    S=V[q]@V.T
    if qe:
        S2=S.copy(); S2[np.arange(len(q)),q]=-9
        nn=np.argsort(-S2,axis=1)[:,:5]
        w=np.take_along_axis(S2,nn,1).clip(0)**3
        Q=V[q]+ (w[:,:,None]*V[nn]).sum(1)
        Q/=np.linalg.norm(Q,axis=1,keepdims=True); S=Q@V.T
    S[np.arange(len(q)),q]=-9
    top=np.argsort(-S,axis=1)[:,:10]
    p=(lab[top]==lab[q][:,None]).mean(1)
    per={}
    for l,v in zip(lab[q],p): per.setdefault(l,[]).append(v)
    macro=np.mean([np.mean(v) for v in per.values()])
    rare=np.mean([v for l,v in zip(lab[q],p) if tc.get(l,0)<100])
    return p.mean(), macro, rare
print("plain", evalp(X), "qe", evalp(X,True))
mu=X.mean(0); C=np.cov((X-mu).T); lam,U=np.linalg.eigh(C); lam=lam[::-1]; U=U[:,::-1]
for d in [256,512,1024,2048]:
    for pw in [0.0,0.25,0.5]:
        for shrink in [0.0, 1.0]:
            if pw==0 and shrink: continue
            L=lam[:d]+shrink*lam[:d].mean()
            V=(X-mu)@U[:,:d]/ (L**pw)
            V/=np.linalg.norm(V,axis=1,keepdims=True)
            a=evalp(V); b=evalp(V,True)
            print(f"d={d} p={pw} shrink={shrink}: plain P@10 {a[0]:.3f} macro {a[1]:.3f} rare {a[2]:.3f} | qe {b[0]:.3f} {b[1]:.3f} {b[2]:.3f}", flush=True)

def krecip(V, k1=20, lam=0.3, qe=False):
    S=V@V.T
    n=len(V)
    np.fill_diagonal(S, -9) if False else None
    top=np.argsort(-S,axis=1)[:,:k1+1]   # includes self
    member=np.zeros((n,n),bool)
    member[np.arange(n)[:,None],top]=True
    recip=member & member.T
    W=np.where(recip, np.exp(S), 0.0)
    W/=W.sum(1,keepdims=True)
    # Jaccard via min/max over sparse rows: sum min = sum over j of min(W[q,j],W[g,j])
    out=[]
    Wq=W[q]
    d_orig=2-2*S[q]
    if qe:
        S2=S[q].copy(); S2[np.arange(len(q)),q]=-9
        nn=np.argsort(-S2,axis=1)[:,:5]
        w=np.take_along_axis(S2,nn,1).clip(0)**3
        Q=V[q]+(w[:,:,None]*V[nn]).sum(1); Q/=np.linalg.norm(Q,axis=1,keepdims=True)
        d_orig=2-2*(Q@V.T)
    res=np.zeros((len(q),n))
    for a,qi in enumerate(q):
        nz=np.nonzero(Wq[a])[0]
        sub=W[:,nz]   # n x |nz|
        mins=np.minimum(sub, Wq[a,nz]).sum(1)
        jac=1-mins/(2-mins)   # sum max = sum Wq + sum Wg - sum min = 2 - mins
        res[a]=(1-lam)*jac+lam*d_orig[a]
    res[np.arange(len(q)),q]=9
    topk=np.argsort(res,axis=1)[:,:10]
    p=(lab[topk]==lab[q][:,None]).mean(1)
    per={}
    for l,v in zip(lab[q],p): per.setdefault(l,[]).append(v)
    return p.mean(), np.mean([np.mean(v) for v in per.values()]), np.mean([v for l,v in zip(lab[q],p) if tc.get(l,0)<100])
for k1 in [20, 30]:
    for lam in [0.6, 0.8]:
        print(f"k-reciprocal k1={k1} lam={lam}, query expanded: P@10, macro, rare", krecip(X, k1, lam, True), flush=True)
